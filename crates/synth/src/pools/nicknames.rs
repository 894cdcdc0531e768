//! Nicknames of forenames, for the nickname noise.

/// Nicknames for some forenames: (forename, nicknames). Several change the initial (Bill, Peggy,
/// Jack, Ted), which defeats the `initial(forename)` key as it would in real data.
pub const NICKNAMES: &[(&str, &[&str])] = &[
    ("William", &["Bill", "Will", "Billy"]),
    ("James", &["Jim", "Jimmy", "Jamie"]),
    ("Robert", &["Bob", "Rob", "Bobby"]),
    ("Richard", &["Dick", "Rich", "Richie"]),
    ("Edward", &["Ted", "Ed", "Eddie"]),
    ("Thomas", &["Tom", "Tommy"]),
    ("Michael", &["Mike", "Mick"]),
    ("Anthony", &["Tony"]),
    ("Christopher", &["Chris"]),
    ("Daniel", &["Dan", "Danny"]),
    ("Joseph", &["Joe"]),
    ("Alexander", &["Alex", "Sandy"]),
    ("Henry", &["Harry", "Hal"]),
    ("John", &["Jack", "Johnny"]),
    ("Charles", &["Charlie", "Chuck"]),
    ("Stephen", &["Steve"]),
    ("Steven", &["Steve"]),
    ("Matthew", &["Matt"]),
    ("Benjamin", &["Ben"]),
    ("Nicholas", &["Nick"]),
    ("Jonathan", &["Jon", "Jonny"]),
    ("Andrew", &["Andy", "Drew"]),
    ("David", &["Dave"]),
    ("Peter", &["Pete"]),
    ("Samuel", &["Sam"]),
    ("Frederick", &["Fred"]),
    ("Joshua", &["Josh"]),
    ("Kenneth", &["Ken"]),
    ("Raymond", &["Ray"]),
    ("Ronald", &["Ron"]),
    ("Margaret", &["Peggy", "Maggie", "Meg"]),
    ("Elizabeth", &["Liz", "Beth", "Betty"]),
    ("Catherine", &["Kate", "Cathy"]),
    ("Kathryn", &["Kate", "Kath"]),
    ("Patricia", &["Pat", "Trish"]),
    ("Susan", &["Sue"]),
    ("Jennifer", &["Jen", "Jenny"]),
    ("Rebecca", &["Becky", "Becca"]),
    ("Samantha", &["Sam", "Sammy"]),
    ("Victoria", &["Vicky", "Tori"]),
    ("Kimberley", &["Kim"]),
    ("Deborah", &["Debbie", "Debs"]),
    ("Jacqueline", &["Jackie"]),
    ("Mary", &["Molly", "Polly"]),
    ("Ann", &["Nancy", "Annie"]),
    ("Eleanor", &["Nell", "Ellie"]),
    ("Christine", &["Chris", "Tina"]),
    ("Abigail", &["Abbie"]),
    ("Natasha", &["Tash"]),
    ("Stephanie", &["Steph"]),
];

/// Nicknames of a forename, if it has any.
pub fn nicknames(forename: &str) -> &'static [&'static str] {
    NICKNAMES
        .iter()
        .find(|(name, _)| *name == forename)
        .map_or(&[], |(_, nicks)| nicks)
}
